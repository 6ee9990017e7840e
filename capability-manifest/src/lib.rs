//! Kibitz capabilities and grants, signed agent manifests, P-256 agent keys, the Kibitz agent
//! assertion and room manifests. Pure data and crypto: no I/O.
