"""The fault-injection suite (`make faults`): see faults/run.py."""
