package main

// metrics.go serves Prometheus metrics (--metrics-addr, off by default).
// A custom collector reads daemon.status() at every scrape, the same
// snapshot `vipd status` prints, so the two never disagree and no counter
// is kept twice.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// rsMetric is one IPVS real server for the metrics.
type rsMetric struct {
	VirtualServer string // "10.0.0.1:80/TCP" or "fwmark 1"
	RealServer    string // "10.0.1.1:8080"
	Up            bool   // its health checks pass
	Weight        int    // the weight in the kernel now (0 while down)
}

// ipvsStatusFunc reports the IPVS real servers for the metrics
// vipd_ipvs_real_server_up and vipd_ipvs_real_server_weight; tests replace it.
var ipvsStatusFunc = func(d *daemon) []rsMetric {
	var out []rsMetric
	for _, vs := range d.lvs.Status() {
		for _, rs := range vs.RealServers {
			out = append(out, rsMetric{VirtualServer: vs.Name, RealServer: rs.Addr, Up: rs.Up, Weight: max(rs.KernelWeight, 0)})
		}
	}
	return out
}

var (
	instLabels = []string{"instance", "interface", "vrid"}

	mInfo           = prometheus.NewDesc("vipd_build_info", "vipd's version; always 1.", []string{"version"}, nil)
	mStarted        = prometheus.NewDesc("vipd_start_time_seconds", "When the daemon started, in seconds since the epoch.", nil, nil)
	mState          = prometheus.NewDesc("vipd_vrrp_state", "The instance's VRRP state: 1 for the current state, 0 for the others.", append(instLabels, "state"), nil)
	mPrio           = prometheus.NewDesc("vipd_vrrp_priority", "Effective priority: configured priority plus tracking weights.", instLabels, nil)
	mConfPrio       = prometheus.NewDesc("vipd_vrrp_configured_priority", "Configured (base) priority.", instLabels, nil)
	mMasterPrio     = prometheus.NewDesc("vipd_vrrp_master_priority", "Priority of the current master as this instance knows it (0: none).", instLabels, nil)
	mInterval       = prometheus.NewDesc("vipd_vrrp_advert_interval_seconds", "Advertisement interval in use (a v3 backup follows the master's).", instLabels, nil)
	mSince          = prometheus.NewDesc("vipd_vrrp_state_since_seconds", "When the instance entered its current state, in seconds since the epoch.", instLabels, nil)
	mTransitions    = prometheus.NewDesc("vipd_vrrp_transitions_total", "State transitions.", instLabels, nil)
	mBecameMaster   = prometheus.NewDesc("vipd_vrrp_became_master_total", "Transitions into MASTER.", instLabels, nil)
	mSent           = prometheus.NewDesc("vipd_vrrp_adverts_sent_total", "Advertisements sent.", instLabels, nil)
	mRcvd           = prometheus.NewDesc("vipd_vrrp_adverts_received_total", "Advertisements received and accepted.", instLabels, nil)
	mDrops          = prometheus.NewDesc("vipd_vrrp_advert_drops_total", "Advertisements dropped, by reason (RFC 5798 section 7.1 checks).", append(instLabels, "reason"), nil)
	mOverruns       = prometheus.NewDesc("vipd_vrrp_advert_overruns_total", "Advertisements dropped because the instance was behind.", instLabels, nil)
	mAddrMismatch   = prometheus.NewDesc("vipd_vrrp_address_mismatches_total", "Accepted advertisements whose address list differs from ours.", instLabels, nil)
	mPrioZeroRcvd   = prometheus.NewDesc("vipd_vrrp_priority_zero_received_total", "Priority 0 advertisements received (a master leaving).", instLabels, nil)
	mPrioZeroSent   = prometheus.NewDesc("vipd_vrrp_priority_zero_sent_total", "Priority 0 advertisements sent.", instLabels, nil)
	mSplitBrains    = prometheus.NewDesc("vipd_vrrp_split_brain_events_total", "Times this master heard another master for its VRID that it outranks.", instLabels, nil)
	mSplitBrain     = prometheus.NewDesc("vipd_vrrp_split_brain", "1 while another master for the VRID is heard, until it falls silent.", instLabels, nil)
	mRunning        = prometheus.NewDesc("vipd_vrrp_instance_error", "1 when the instance cannot run (missing interface, socket error).", instLabels, nil)
	mTrackUp        = prometheus.NewDesc("vipd_vrrp_tracked_object_up", "Tracked object result: 1 OK, 0 failed.", append(instLabels, "kind", "name"), nil)
	mTrackWeight    = prometheus.NewDesc("vipd_vrrp_tracked_object_weight", "What the tracked object adds to the priority now.", append(instLabels, "kind", "name"), nil)
	mRealServerUp   = prometheus.NewDesc("vipd_ipvs_real_server_up", "IPVS real server health: 1 up, 0 down.", []string{"virtual_server", "real_server"}, nil)
	mRealServerWght = prometheus.NewDesc("vipd_ipvs_real_server_weight", "IPVS real server weight in the kernel.", []string{"virtual_server", "real_server"}, nil)
)

// metricsCollector is a prometheus.Collector over daemon.status().
type metricsCollector struct{ d *daemon }

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mInfo, mStarted, mState, mPrio, mConfPrio, mMasterPrio, mInterval, mSince,
		mTransitions, mBecameMaster, mSent, mRcvd, mDrops, mOverruns, mAddrMismatch, mPrioZeroRcvd, mPrioZeroSent,
		mSplitBrains, mSplitBrain, mRunning, mTrackUp, mTrackWeight, mRealServerUp, mRealServerWght} {
		ch <- d
	}
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.status()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(mInfo, 1, st.Version)
	gauge(mStarted, float64(st.Started.UnixMilli())/1000)
	for _, is := range st.Instances {
		l := []string{is.Name, is.Interface, itoa(is.VRID)}
		with := func(extra ...string) []string { return append(append([]string(nil), l...), extra...) }
		for s := stateInit; s <= stateFault; s++ {
			v := 0.0
			if s.String() == is.State {
				v = 1
			}
			gauge(mState, v, with(s.String())...)
		}
		gauge(mPrio, float64(is.EffectivePriority), l...)
		gauge(mConfPrio, float64(is.ConfiguredPriority), l...)
		gauge(mMasterPrio, float64(is.MasterPriority), l...)
		gauge(mInterval, float64(is.AdvertIntervalMs)/1000, l...)
		gauge(mSince, float64(is.Since.UnixMilli())/1000, l...)
		counter(mTransitions, uint64(is.Transitions), l...)
		counter(mBecameMaster, is.BecameMaster, l...)
		counter(mSent, is.AdvertsSent, l...)
		counter(mRcvd, is.AdvertsReceived, l...)
		// Every reason, zeros included, so rate() works from the start.
		for r := dropReason(1); r < numDropReasons; r++ {
			counter(mDrops, is.Drops[r.String()], with(r.String())...)
		}
		counter(mOverruns, is.Overruns, l...)
		counter(mAddrMismatch, is.AddressMismatches, l...)
		counter(mPrioZeroRcvd, is.PrioZeroReceived, l...)
		counter(mPrioZeroSent, is.PrioZeroSent, l...)
		counter(mSplitBrains, is.SplitBrains, l...)
		sb := 0.0
		if is.SplitBrainWith != "" {
			sb = 1
		}
		gauge(mSplitBrain, sb, l...)
		e := 0.0
		if is.Error != "" {
			e = 1
		}
		gauge(mRunning, e, l...)
		for _, t := range is.Tracked {
			up := 0.0
			if t.OK {
				up = 1
			}
			gauge(mTrackUp, up, with(t.Kind, t.Name)...)
			gauge(mTrackWeight, float64(t.Weight), with(t.Kind, t.Name)...)
		}
	}
	if ipvsStatusFunc != nil {
		for _, rs := range ipvsStatusFunc(c.d) {
			up := 0.0
			if rs.Up {
				up = 1
			}
			gauge(mRealServerUp, up, rs.VirtualServer, rs.RealServer)
			gauge(mRealServerWght, float64(rs.Weight), rs.VirtualServer, rs.RealServer)
		}
	}
}

// metricsHandler is the /metrics handler for d: vipd's metrics plus the
// Go runtime's and the process's.
func metricsHandler(d *daemon) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{d},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
}

// serveMetrics listens on addr and serves /metrics until ctx ends.
func (d *daemon) serveMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(d))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<html><body><a href="/metrics">metrics</a></body></html>`))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error().Err(err).Str("addr", addr).Msg("metrics server stopped")
		}
	}()
	d.log.Info().Str("addr", "http://"+ln.Addr().String()+"/metrics").Msg("Serving metrics")
	return nil
}
