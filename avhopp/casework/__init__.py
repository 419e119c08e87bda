"""What both tracks share: the data subject (Person), team and access policy, journal, plans."""
