"""The web dashboard (receiver/dashboard/): its pages rendered from views, and a live one."""
