"""The command line: parses arguments, calls the library, renders. No SQL, no rules."""
