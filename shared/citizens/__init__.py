"""Citizens: the people who ask for help, whether through Telegram or at a helpdesk."""
