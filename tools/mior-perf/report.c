/* mior-perf: the final table, the side-by-side comparison and the JSON lines. */
#include <stdio.h>
#include <string.h>

#include "perf.h"

const char *perf_kind_name(perf_kind k) {
  return k == PERF_KIND_IP ? "ip" : k == PERF_KIND_PACKET ? "packet" : "udp";
}

const char *perf_mode_name(perf_mode m) {
  return m == PERF_MODE_LATENCY ? "latency" : "throughput";
}

static double per_submit(const mior_port_stats *s) {
  return s->submits ? (double)s->completions / (double)s->submits : 0;
}

static void features(const mior_port_stats *s, char *buf, size_t len) {
  if (mior_features_format(s->features, buf, len) < 0 || !buf[0]) snprintf(buf, len, "-");
}

/* What --size amounts to on an Ethernet wire (no FCS), for the reader of the table. */
static uint32_t frame_bytes(const perf_config *cfg) {
  switch (cfg->kind) {
    case PERF_KIND_UDP: return cfg->size + 14 + 20 + 8;
    case PERF_KIND_IP: return cfg->size + 14;
    default: return cfg->size;
  }
}

static void port_lines(const char *side, const mior_port_stats *s) {
  char feat[160];
  features(s, feat, sizeof feat);
  printf("  %-3s port   %s  [%s]%s%s\n", side, mior_backend_name(s->backend), feat,
         s->fallback_reason[0] ? "  fallback: " : "", s->fallback_reason);
  printf("             packets rx %llu tx %llu  drops: truncated %llu rx-errors %llu tx-errors %llu "
         "tx-short %llu refused %llu cq-overflow %llu  rx dry spells %llu  tx-invalid %llu\n",
         (unsigned long long)s->rx_packets, (unsigned long long)s->tx_packets,
         (unsigned long long)s->rx_drop_truncated, (unsigned long long)s->rx_errors,
         (unsigned long long)s->tx_errors, (unsigned long long)s->tx_short,
         (unsigned long long)s->conn_refused, (unsigned long long)s->cq_overflow,
         (unsigned long long)s->rx_nobufs, (unsigned long long)s->tx_invalid);
  printf("             submits %llu  completions/submit %.1f  backpressure %llu  pool high water %u\n",
         (unsigned long long)s->submits, per_submit(s), (unsigned long long)s->tx_backpressure,
         s->pool_high_water);
  if (s->features & MIOR_FEAT_IORING_EMULATION)
    printf("             IoRing here is an emulation (IORING_FEATURE_UM_EMULATION), not Windows' kernel "
           "rings: these figures say nothing about IoRing on Windows\n");
}

/* Both ends' CPU over the whole run per packet sent: a backend that moves more packets by keeping
 * its receiver awake shows it here. */
static double cpu_per_packet_us(const perf_result *r) {
  return r->tx_total ? (r->cpu_tx_s + r->cpu_rx_s) * 1e6 / (double)r->tx_total : 0;
}

void perf_report_one(const perf_config *cfg, const perf_result *r) {
  printf("mior-perf %s  backend %s  kind %s  size %u (%u-byte frame)  measured %.2f s\n",
         perf_mode_name(r->mode), mior_backend_name(r->backend), perf_kind_name(r->kind), r->size,
         frame_bytes(cfg), r->seconds);
  if (r->mode == PERF_MODE_THROUGHPUT) {
    printf("  tx        %12.0f pps\n", r->tx_pps);
    printf("  rx        %12.0f pps  %10.1f Mbit/s\n", r->rx_pps, r->rx_mbps);
    printf("  loss      %12.4f %%    lost %llu of %llu sent; reordered %llu, duplicates %llu, "
           "foreign %llu\n",
           r->loss, (unsigned long long)r->lost, (unsigned long long)r->tx_total,
           (unsigned long long)r->reordered, (unsigned long long)r->duplicates,
           (unsigned long long)r->foreign);
  } else {
    printf("  round trips %10.0f /s  samples %llu  lost %llu (%.4f %%)  late %llu  foreign %llu\n",
           r->rx_pps, (unsigned long long)r->samples, (unsigned long long)r->lost, r->loss,
           (unsigned long long)r->reordered, (unsigned long long)r->foreign);
    printf("  rtt us    min %.2f  mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
           r->min_us, r->mean_us, r->p50_us, r->p90_us, r->p99_us, r->p999_us, r->max_us);
  }
  if (r->mode == PERF_MODE_THROUGHPUT)
    printf("  cpu       sender %.2f s  receiver %.2f s (whole run)  %.2f us per packet sent\n", r->cpu_tx_s,
           r->cpu_rx_s, cpu_per_packet_us(r));
  else
    printf("  cpu       client %.2f s  server %.2f s (whole run)\n", r->cpu_tx_s, r->cpu_rx_s);
  port_lines(r->mode == PERF_MODE_LATENCY ? "srv" : "rx", &r->rx_stats);
  port_lines(r->mode == PERF_MODE_LATENCY ? "cli" : "tx", &r->tx_stats);
}

static void row(const char *name, double a, double b) {
  char ratio[32] = "-";
  if (b != 0) snprintf(ratio, sizeof ratio, "%.2fx", a / b);
  printf("  %-24s %14.2f %14.2f %10s\n", name, a, b, ratio);
}

void perf_report_compare(const perf_config *cfg, const perf_result *a, const perf_result *b) {
  printf("\n%s  kind %s  size %u (%u-byte frame)\n", perf_mode_name(a->mode), perf_kind_name(a->kind),
         a->size, frame_bytes(cfg));
  printf("  %-24s %14s %14s %10s\n", "", mior_backend_name(a->backend), mior_backend_name(b->backend),
         "ratio");
  if (a->mode == PERF_MODE_THROUGHPUT) {
    row("tx pps", a->tx_pps, b->tx_pps);
    row("rx pps", a->rx_pps, b->rx_pps);
    row("rx Mbit/s", a->rx_mbps, b->rx_mbps);
    row("loss %", a->loss, b->loss);
    row("sender CPU s", a->cpu_tx_s, b->cpu_tx_s);
    row("receiver CPU s", a->cpu_rx_s, b->cpu_rx_s);
    row("CPU us per packet", cpu_per_packet_us(a), cpu_per_packet_us(b));
  } else {
    row("round trips/s", a->rx_pps, b->rx_pps);
    row("mean us", a->mean_us, b->mean_us);
    row("p50 us", a->p50_us, b->p50_us);
    row("p90 us", a->p90_us, b->p90_us);
    row("p99 us", a->p99_us, b->p99_us);
    row("p99.9 us", a->p999_us, b->p999_us);
    row("max us", a->max_us, b->max_us);
    row("loss %", a->loss, b->loss);
    row("client CPU s", a->cpu_tx_s, b->cpu_tx_s);
    row("server CPU s", a->cpu_rx_s, b->cpu_rx_s);
  }
  row("rx completions/submit", per_submit(&a->rx_stats), per_submit(&b->rx_stats));
  row("tx completions/submit", per_submit(&a->tx_stats), per_submit(&b->tx_stats));
}

/* Strings here are feature names and short reasons; escape what JSON requires anyway. */
static void json_str(const char *key, const char *s) {
  printf(",\"%s\":\"", key);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      printf("\\%c", ch);
    else if (ch < 0x20)
      printf("\\u%04x", ch);
    else
      putchar(ch);
  }
  putchar('"');
}

static void json_port(const char *side, const mior_port_stats *s) {
  char feat[160], key[64];
  if (mior_features_format(s->features, feat, sizeof feat) < 0) feat[0] = '\0';
  snprintf(key, sizeof key, "%s_features", side);
  json_str(key, feat);
  snprintf(key, sizeof key, "%s_fallback", side);
  json_str(key, s->fallback_reason);
#define F(name) printf(",\"%s_" #name "\":%llu", side, (unsigned long long)s->name)
  F(rx_packets);
  F(tx_packets);
  F(rx_nobufs);
  F(rx_drop_truncated);
  F(rx_errors);
  F(tx_errors);
  F(tx_invalid);
  F(tx_short);
  F(tx_backpressure);
  F(conn_refused);
  F(cq_overflow);
  F(submits);
  F(completions);
#undef F
  printf(",\"%s_completions_per_submit\":%.2f", side, per_submit(s));
}

void perf_report_skipped(const perf_config *cfg, mior_backend b, const char *reason) {
  if (!cfg->json) {
    printf("\nmior-perf %s  backend %s  skipped: not available here: %s\n", perf_mode_name(cfg->mode),
           mior_backend_name(b), reason);
    fflush(stdout);
    return;
  }
  printf("{\"backend\":\"%s\",\"kind\":\"%s\",\"mode\":\"%s\",\"skipped\":true", mior_backend_name(b),
         perf_kind_name(cfg->kind), perf_mode_name(cfg->mode));
  json_str("reason", reason);
  printf("}\n");
  fflush(stdout);
}

void perf_report_json(const perf_config *cfg, const perf_result *r) {
  printf("{\"backend\":\"%s\",\"kind\":\"%s\",\"mode\":\"%s\"", mior_backend_name(r->backend),
         perf_kind_name(r->kind), perf_mode_name(r->mode));
  printf(",\"netns\":%s,\"size\":%u,\"frame\":%u,\"seconds\":%.3f", cfg->netns ? "true" : "false",
         r->size, frame_bytes(cfg), r->seconds);
  printf(",\"tx_pps\":%.1f,\"rx_pps\":%.1f,\"rx_mbps\":%.2f,\"loss\":%.6f", r->tx_pps, r->rx_pps,
         r->rx_mbps, r->loss);
  printf(",\"tx_total\":%llu,\"rx_total\":%llu,\"lost\":%llu,\"reordered\":%llu,\"duplicates\":%llu,"
         "\"foreign\":%llu",
         (unsigned long long)r->tx_total, (unsigned long long)r->rx_total,
         (unsigned long long)r->lost, (unsigned long long)r->reordered,
         (unsigned long long)r->duplicates, (unsigned long long)r->foreign);
  if (r->mode == PERF_MODE_LATENCY)
    printf(",\"samples\":%llu,\"min_us\":%.3f,\"mean_us\":%.3f,\"p50_us\":%.3f,\"p90_us\":%.3f,"
           "\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f",
           (unsigned long long)r->samples, r->min_us, r->mean_us, r->p50_us, r->p90_us, r->p99_us,
           r->p999_us, r->max_us);
  printf(",\"cpu_tx_s\":%.4f,\"cpu_rx_s\":%.4f", r->cpu_tx_s, r->cpu_rx_s);
  if (cfg->pcap_path) printf(",\"pcap_packets\":%llu", (unsigned long long)r->pcap_packets);
  printf(",\"batch\":%u,\"busy_poll_us\":%u,\"queues\":%u,\"rate\":%llu", cfg->batch,
         cfg->busy_poll_us, cfg->queues, (unsigned long long)cfg->rate);
  json_port(r->mode == PERF_MODE_LATENCY ? "srv" : "rx", &r->rx_stats);
  json_port(r->mode == PERF_MODE_LATENCY ? "cli" : "tx", &r->tx_stats);
  printf("}\n");
  fflush(stdout);
}
