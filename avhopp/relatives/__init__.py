"""The relative track (anhörigärende); built in a later issue."""
