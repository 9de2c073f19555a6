if ENABLE_FUZZING
FUZZ_LINK = -fsanitize=fuzzer
endif
