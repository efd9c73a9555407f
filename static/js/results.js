// Result tables: sorting by a column (issue 11 point 1).
