"""The tests, laid out as the product is: one folder per package of pipeline/ and receiver/,
the end-to-end runs in e2e/, the harness in support/. Every folder is a package, so a test
module is imported by its full name (`tests.app.test_config`) and may share its file name
with one in another folder."""
