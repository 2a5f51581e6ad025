"""Run the mock external service: `python -m mock_external --help`."""

from mock_external.cli import main

if __name__ == "__main__":
    main()
