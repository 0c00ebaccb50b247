"""Exports for the coordinators and the funders (SPEC J6, issue 13): CSV and XLSX."""
