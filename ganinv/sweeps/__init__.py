"""What sweeps share: the results of a sweep named by its run folders (`results.SweepResults`)."""
