"""Schedules: recurring campaigns that fire exactly once per occurrence.

`cron` says when the occurrences are (a cron expression on a time zone's wall clock, with one
rule for the daylight-saving changes); `sources` reads the campaign file a schedule stores;
`store` adds, changes, pauses, resumes, removes and reads schedules and their history; `firing`
turns due occurrences into campaigns, one transaction each, under the catch-up policies.
"""
