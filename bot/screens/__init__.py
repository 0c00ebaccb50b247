"""What the bot shows, as pure functions: plain data in, text (HTML) and buttons out.

Screens read nothing and send nothing: the handlers (`bot.handlers`) and the outbox
(`bot.delivery`) fetch the data, call a screen, and reply. So every text can be tested
without PTB or a database, and what a citizen keeps (the booking card) is built once.
"""
