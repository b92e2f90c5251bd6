"""Push rules, unread notification counts and /notifications."""
