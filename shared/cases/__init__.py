"""Cases and interviews (SPEC section 5, journey J4): one candidate's path through the program."""
