"""The audit log: who changed what, when, from where and through which door."""
