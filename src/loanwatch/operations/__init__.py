"""Operations: `loanwatch run` (one day's cycle, with its history in meta.runs) and
`loanwatch schedule` (run on a cron schedule). See docs/operations.md."""
