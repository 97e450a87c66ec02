"""Speech adapters and their timing glue: text to speech (`tts`, pyttsx3), prompt rendering and
the cache (`render`, soxr), recognition (`asr`, vosk), voice activity (`vad`, pure) and the tap
that feeds a call's audio to the recogniser (`tap`)."""
