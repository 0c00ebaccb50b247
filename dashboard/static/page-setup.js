// Our own settings for the vendored front-end packages (Bootstrap Italia reads them when its
// bundle, loaded right after this file, starts).
// A file, not an inline script, so the Content-Security-Policy can refuse inline scripts.

// Where it finds its fonts.
window.__PUBLIC_PATH__ = "/static/vendor/bootstrap-italia/fonts";
// The bundle's video player would add a <style> element, which the policy refuses; we show
// no video.
window.VIDEOJS_NO_DYNAMIC_STYLE = true;
