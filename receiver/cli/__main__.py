from receiver.cli import program

program()
