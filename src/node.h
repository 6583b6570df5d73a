/* The node: owns the loop and every module, wires them together (the only
 * place that knows them all), runs until SIGINT/SIGTERM and then closes
 * everything, in order. */
#ifndef VARASTO_NODE_H
#define VARASTO_NODE_H

struct config;

/* Run a node with @config until it is stopped. Returns the process exit
 * code: 0 after a clean stop, 1 on a startup error (one line on stderr). */
int node_run(const struct config *config);

#endif
