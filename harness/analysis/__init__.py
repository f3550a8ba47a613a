"""Results and what is made of them: the typed result row and its JSON-lines store, statistics, compare,
tables, reports and plots. Reads result files only; never imports the stack it reports on."""
