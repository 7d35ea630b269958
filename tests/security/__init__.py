"""End to end, issue 9: nobody gets in who should not, and no input hurts the live app."""
