/*
 * fetch_cli: the "mailtunnel fetch" subcommand (src/fetch_cli.c). main()
 * hands it argv from "fetch" on and exits with what it returns.
 */
#ifndef MAILTUNNEL_FETCH_CLI_H
#define MAILTUNNEL_FETCH_CLI_H

/* argv[0] is "fetch". Returns a sysexits code. */
int mt_fetch_cli_main(int argc, char **argv);

/* "fetch -c CONFIG [SERVICE...]" (src/fetch_config_cli.c). */
int mt_fetch_config_main(int argc, char **argv);

#endif
