"""Operations: training versions on the data known at t, issuing and backfilling forecasts, global versions for fleets, alerts, and the jobs that record them in the archive."""
