"""The built-in sound library, installed as voiceguide._sounds; regenerate with: python -m voiceguide.soundgen"""
