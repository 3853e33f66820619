"""The click commands: parse, call the core, hand the result over."""
