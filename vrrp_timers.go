package main

import "time"

// Protocol constants of RFC 3768 section 5.3 and RFC 5798 section 5.2.
const (
	// prioStop is the priority a master advertises when it stops
	// participating (RFC 5798 section 5.2.4): backups take over after
	// Skew_Time instead of Master_Down_Interval.
	prioStop = 0
	// prioOwner is the address owner's priority (RFC 5798 section 5.2.4);
	// it becomes master at once at startup and is never changed by tracking.
	prioOwner = 255
	// prioDefault is the priority of a backup when none is configured
	// (RFC 5798 section 5.2.4; keepalived's default too).
	prioDefault = 100

	// Advertisement interval bounds. Version 2 carries whole seconds
	// (RFC 3768 section 5.3.7, default 1 s); version 3 carries a 12-bit
	// count of centiseconds (RFC 5798 section 5.2.7, default 100 cs).
	minIntervalV2CS        = 100
	maxIntervalV2CS        = 255 * 100
	minIntervalV3CS        = 1
	maxIntervalV3CS        = 4095
	defaultAdverIntervalCS = 100

	// defaultDownAdverts is the 3 of RFC 5798 section 6.1's
	// Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_time.
	// keepalived makes it configurable as down_timer_adverts (1..100).
	defaultDownAdverts = 3
	maxDownAdverts     = 100

	// maxPreemptDelay is keepalived's upper bound for preempt_delay.
	maxPreemptDelay = 1000 * time.Second
)

// csDuration converts an interval in centiseconds to a duration.
func csDuration(cs uint16) time.Duration { return time.Duration(cs) * 10 * time.Millisecond }

// skewTime is Skew_Time for a router of the given priority.
//
// Version 2 (RFC 3768 section 6.1): (256 - Priority) / 256 seconds; it does
// not scale with the advertisement interval.
// Version 3 (RFC 5798 section 6.1): ((256 - Priority) * Master_Adver_Interval)
// / 256 centiseconds. The division is done in nanoseconds so nothing is
// lost to rounding (keepalived does the same in microseconds).
func skewTime(version uint8, prio uint8, masterAdverCS uint16) time.Duration {
	n := int64(256 - int(prio))
	if version == 2 {
		return time.Duration(n * int64(time.Second) / 256)
	}
	return time.Duration(n * int64(masterAdverCS) * int64(10*time.Millisecond) / 256)
}

// masterDownInterval is RFC 5798 section 6.1's
// Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_time, with the 3
// replaced by keepalived's down_timer_adverts multiplier.
func masterDownInterval(version uint8, prio uint8, masterAdverCS uint16, adverts int) time.Duration {
	return time.Duration(adverts)*csDuration(masterAdverCS) + skewTime(version, prio, masterAdverCS)
}

// effectivePriority is the priority an instance advertises: the configured
// one plus the weights of its tracked objects, clamped to 1..254 as
// keepalived does. An address owner (255) is never changed by tracking.
func effectivePriority(configured uint8, weights int) uint8 {
	if configured == prioOwner {
		return prioOwner
	}
	p := int(configured) + weights
	switch {
	case p < 1:
		return 1
	case p > prioOwner-1:
		return prioOwner - 1
	}
	return uint8(p)
}
