"""The citizen's privacy rights and the rules that protect their data (SPEC J8).

`notice`: the versioned privacy notice (informativa, GDPR art. 13); `my_data`: a citizen's
copy of their data (access, art. 15); `erasure`: erasure at their request or by a
coordinator (art. 17) and the anonymisation of closed cases; `retention`: the time limits,
run daily and by `ripartire retention run`. docs/privacy.md is the record of processing.
"""
