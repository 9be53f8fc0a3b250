"""Operations: each composes the layers below into one command."""
