"""The alerts an incident came from, in its header."""
