"""The Individualized Intervention Plan (PII): catalog, plan, lifecycle, list, document."""
