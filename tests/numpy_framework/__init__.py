"""A framework as a newcomer would add one: this folder (adapter.py, the device contract;
ops.py, the workloads it implements) plus one catalog entry. tests/test_new_framework.py
registers it and runs a case through a real worker."""
