"""The program's figures for the coordinators and the funders (SPEC J6, issue 13).

One module per figure group, each with one service taking
`(session, settings, period, helpdesk_id=None, now)` and returning frozen dataclasses of
plain numbers. Every number is an aggregate the database computes (COUNT, SUM, GROUP BY,
CASE); Python only reads the few rows those return, never the cases themselves: the page
costs the same handful of statements with 100 cases or 100,000 (`service.figures`).
"""
