package reconciler

import (
	"math"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"
)

// defaultDownscaleStabilization is kube-controller-manager's
// --horizontal-pod-autoscaler-downscale-stabilization.
const defaultDownscaleStabilization = 5 * time.Minute

// hpaBehavior is an HPA's spec.behavior with Kubernetes' defaults filled
// in: scale up at once by 100% or 4 pods per 15 s, whichever is more; scale
// down by up to 100% per 15 s after a window of downWindow (300 s by
// default).
func hpaBehavior(b *autoscalingv2.HorizontalPodAutoscalerBehavior, downWindow time.Duration) autoscalingv2.HorizontalPodAutoscalerBehavior {
	out := autoscalingv2.HorizontalPodAutoscalerBehavior{}
	if b != nil {
		out = *b.DeepCopy()
	}
	if out.ScaleUp == nil {
		out.ScaleUp = &autoscalingv2.HPAScalingRules{}
	}
	if out.ScaleDown == nil {
		out.ScaleDown = &autoscalingv2.HPAScalingRules{}
	}
	up, down := out.ScaleUp, out.ScaleDown
	if up.StabilizationWindowSeconds == nil {
		up.StabilizationWindowSeconds = ptr.To[int32](0)
	}
	if up.SelectPolicy == nil {
		up.SelectPolicy = ptr.To(autoscalingv2.MaxChangePolicySelect)
	}
	if len(up.Policies) == 0 {
		up.Policies = []autoscalingv2.HPAScalingPolicy{
			{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15},
		}
	}
	if down.StabilizationWindowSeconds == nil {
		down.StabilizationWindowSeconds = ptr.To(int32(downWindow / time.Second))
	}
	if down.SelectPolicy == nil {
		down.SelectPolicy = ptr.To(autoscalingv2.MaxChangePolicySelect)
	}
	if len(down.Policies) == 0 {
		down.Policies = []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15}}
	}
	return out
}

// hpaRecommendation is one replica count the metrics asked for, and when.
type hpaRecommendation struct {
	at       time.Time
	replicas int32
}

// hpaScaleEvent is one change of replicas the autoscaler made.
type hpaScaleEvent struct {
	at     time.Time
	change int32 // pods added (scale up) or removed (scale down)
}

// hpaHistory is what the autoscaler remembers of one HPA between passes,
// as kube-controller-manager does in memory: the recommendations of the
// longest stabilization window, the scale events of the longest policy
// period. A new leader starts without it, as a restarted upstream does.
type hpaHistory struct {
	recommendations []hpaRecommendation
	scaleUp         []hpaScaleEvent
	scaleDown       []hpaScaleEvent
}

// stabilize returns the replicas to move to given the current count and
// the metrics' proposal: no higher than the lowest proposal of the scale-up
// window, no lower than the highest of the scale-down window. It records
// the proposal.
func (h *hpaHistory) stabilize(b autoscalingv2.HorizontalPodAutoscalerBehavior, current, proposal int32, now time.Time) (int32, string, string) {
	upSince := now.Add(-time.Duration(*b.ScaleUp.StabilizationWindowSeconds) * time.Second)
	downSince := now.Add(-time.Duration(*b.ScaleDown.StabilizationWindowSeconds) * time.Second)
	upRec, downRec := proposal, proposal
	keep := h.recommendations[:0]
	longest := max(*b.ScaleUp.StabilizationWindowSeconds, *b.ScaleDown.StabilizationWindowSeconds)
	for _, r := range h.recommendations {
		if r.at.After(upSince) {
			upRec = min(upRec, r.replicas)
		}
		if r.at.After(downSince) {
			downRec = max(downRec, r.replicas)
		}
		if r.at.After(now.Add(-time.Duration(longest) * time.Second)) {
			keep = append(keep, r)
		}
	}
	h.recommendations = append(keep, hpaRecommendation{at: now, replicas: proposal})
	out := current
	if out < upRec {
		out = upRec
	}
	if out > downRec {
		out = downRec
	}
	switch {
	case out == proposal:
		return out, "ReadyForNewScale", "recommended size matches current size"
	case out < proposal:
		return out, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
	default:
		return out, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"
	}
}

// limit bounds desired by minReplicas and maxReplicas and by the rate the
// scaling policies allow, returning the count and the ScalingLimited
// condition's reason and message.
func (h *hpaHistory) limit(b autoscalingv2.HorizontalPodAutoscalerBehavior, current, desired, minReplicas, maxReplicas int32, now time.Time) (int32, string, string) {
	switch {
	case desired > current:
		upLimit := max(scaleUpLimit(current, h.scaleUp, b.ScaleUp, now), current)
		allowed, reason, msg := maxReplicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
		if allowed > upLimit {
			allowed, reason, msg = upLimit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
		}
		if desired > allowed {
			return allowed, reason, msg
		}
	case desired < current:
		downLimit := min(scaleDownLimit(current, h.scaleDown, b.ScaleDown, now), current)
		allowed, reason, msg := minReplicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
		if allowed < downLimit {
			allowed, reason, msg = downLimit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if desired < allowed {
			return allowed, reason, msg
		}
	}
	return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
}

// record notes a change of replicas for the rate limits, forgetting events
// older than every policy's period.
func (h *hpaHistory) record(b autoscalingv2.HorizontalPodAutoscalerBehavior, from, to int32, now time.Time) {
	if to > from {
		h.scaleUp = append(keepEvents(h.scaleUp, b.ScaleUp, now), hpaScaleEvent{at: now, change: to - from})
	} else if to < from {
		h.scaleDown = append(keepEvents(h.scaleDown, b.ScaleDown, now), hpaScaleEvent{at: now, change: from - to})
	}
}

func keepEvents(events []hpaScaleEvent, rules *autoscalingv2.HPAScalingRules, now time.Time) []hpaScaleEvent {
	var longest int32
	for _, p := range rules.Policies {
		longest = max(longest, p.PeriodSeconds)
	}
	out := events[:0]
	for _, e := range events {
		if e.at.After(now.Add(-time.Duration(longest) * time.Second)) {
			out = append(out, e)
		}
	}
	return out
}

// changedIn sums the changes of events within the last period seconds.
func changedIn(events []hpaScaleEvent, period int32, now time.Time) int32 {
	var n int32
	for _, e := range events {
		if e.at.After(now.Add(-time.Duration(period) * time.Second)) {
			n += e.change
		}
	}
	return n
}

// scaleUpLimit is the most replicas the scale-up policies allow now: each
// policy allows, from the count at the start of its period, its pods or its
// percent more; selectPolicy picks the largest (Max) or smallest (Min).
func scaleUpLimit(current int32, events []hpaScaleEvent, rules *autoscalingv2.HPAScalingRules, now time.Time) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, out := maxInt32, int32(math.MinInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, out = minInt32, math.MaxInt32
	}
	for _, p := range rules.Policies {
		start := current - changedIn(events, p.PeriodSeconds, now)
		var proposed int32
		if p.Type == autoscalingv2.PodsScalingPolicy {
			proposed = start + p.Value
		} else {
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		}
		out = pick(out, proposed)
	}
	return out
}

// scaleDownLimit is the fewest replicas the scale-down policies allow now;
// Max selects the policy that allows the largest change.
func scaleDownLimit(current int32, events []hpaScaleEvent, rules *autoscalingv2.HPAScalingRules, now time.Time) int32 {
	if *rules.SelectPolicy == autoscalingv2.DisabledPolicySelect {
		return current
	}
	pick, out := minInt32, int32(math.MaxInt32)
	if *rules.SelectPolicy == autoscalingv2.MinChangePolicySelect {
		pick, out = maxInt32, math.MinInt32
	}
	for _, p := range rules.Policies {
		start := current + changedIn(events, p.PeriodSeconds, now)
		var proposed int32
		if p.Type == autoscalingv2.PodsScalingPolicy {
			proposed = start - p.Value
		} else {
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		out = pick(out, proposed)
	}
	return out
}

func maxInt32(a, b int32) int32 { return max(a, b) }
func minInt32(a, b int32) int32 { return min(a, b) }
