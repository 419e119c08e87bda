"""The defector track (avhopparärende); built in a later issue."""
