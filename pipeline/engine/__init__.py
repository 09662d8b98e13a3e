"""Runner glue: MMEngine compatibility fixes, runner construction, checkpoint loading."""
