"""A stand-in for the external service that receives daily-total events, with injectable faults."""
