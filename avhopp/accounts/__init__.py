"""Staff accounts: roles, login with mandatory TOTP, server-side sessions, throttling."""
