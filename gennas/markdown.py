"""Small Markdown helpers shared by reports."""


def code_cell(text: str) -> str:
    """``text`` as inline code inside a Markdown table cell: NB201 arch strings are full of
    pipes, and a bare pipe ends the cell even between backticks."""
    return "`" + str(text).replace("|", "\\|") + "`"
