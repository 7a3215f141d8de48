"""Demo task: one of two parallel transforms."""
import sys
import time

name = sys.argv[1] if len(sys.argv) > 1 else "transform"
print(f"{name}: starting")
time.sleep(2)
print(f"{name}: done")
