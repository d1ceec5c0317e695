//! Building one metric family (the `prometheus` crate's protobuf model) from a catalog entry and
//! values read at scrape time.
//!
//! The label names come from the [`MetricDef`], so a family can only carry the labels its
//! definition declares; values are given positionally in the same order.

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::catalog::{Kind, MetricDef};
use crate::plane::stats::HistogramSnapshot;

/// A family being filled.
#[derive(Debug)]
pub struct Family {
    def: MetricDef,
    metrics: Vec<Metric>,
}

impl Family {
    /// An empty family for `def`.
    pub fn new(def: MetricDef) -> Self {
        Self {
            def,
            metrics: Vec::new(),
        }
    }

    fn metric(&self, values: &[&str]) -> Metric {
        // A mismatch is a bug in the collector, caught by the exposition tests; in release the
        // extra values are dropped rather than producing an inconsistent family.
        debug_assert_eq!(values.len(), self.def.labels.len(), "{}", self.def.name);
        let labels = self
            .def
            .labels
            .iter()
            .zip(values)
            .map(|(name, value)| {
                let mut l = LabelPair::default();
                l.set_name((*name).to_owned());
                l.set_value((*value).to_owned());
                l
            })
            .collect();
        Metric::from_label(labels)
    }

    /// Adds a gauge sample.
    pub fn gauge(&mut self, values: &[&str], value: f64) {
        debug_assert_eq!(self.def.kind, Kind::Gauge, "{}", self.def.name);
        let mut m = self.metric(values);
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
        self.metrics.push(m);
    }

    /// Adds a gauge sample from an integer.
    pub fn gauge_u64(&mut self, values: &[&str], value: u64) {
        self.gauge(values, value as f64);
    }

    /// Adds a 0/1 gauge sample.
    pub fn flag(&mut self, values: &[&str], on: bool) {
        self.gauge(values, if on { 1.0 } else { 0.0 });
    }

    /// Adds a counter sample.
    pub fn counter(&mut self, values: &[&str], value: u64) {
        debug_assert_eq!(self.def.kind, Kind::Counter, "{}", self.def.name);
        let mut m = self.metric(values);
        let mut c = Counter::default();
        c.set_value(value as f64);
        m.set_counter(c);
        self.metrics.push(m);
    }

    /// Adds a histogram sample.
    pub fn histogram(&mut self, values: &[&str], snap: &HistogramSnapshot) {
        debug_assert_eq!(self.def.kind, Kind::Histogram, "{}", self.def.name);
        let mut m = self.metric(values);
        let mut h = Histogram::default();
        h.set_sample_count(snap.count);
        h.set_sample_sum(snap.sum_seconds);
        let buckets = snap
            .buckets
            .iter()
            .map(|(bound, count)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(*count);
                b
            })
            .collect();
        h.set_bucket(buckets);
        m.set_histogram(h);
        self.metrics.push(m);
    }

    /// The finished family.
    pub fn finish(self) -> MetricFamily {
        let mut mf = MetricFamily::default();
        mf.set_name(self.def.name.to_owned());
        mf.set_help(self.def.help.to_owned());
        mf.set_field_type(match self.def.kind {
            Kind::Counter => MetricType::COUNTER,
            Kind::Gauge => MetricType::GAUGE,
            Kind::Histogram => MetricType::HISTOGRAM,
        });
        mf.set_metric(self.metrics);
        mf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::metrics::catalog;

    #[test]
    fn builds_labelled_samples() {
        let mut f = Family::new(catalog::QUEUES);
        f.gauge_u64(&["admin"], 2);
        f.gauge_u64(&["io"], 5);
        let mf = f.finish();
        assert_eq!(mf.name(), "lamina_queues");
        assert_eq!(mf.get_field_type(), MetricType::GAUGE);
        let m = mf.get_metric();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].get_label()[0].name(), "type");
        assert_eq!(m[1].get_label()[0].value(), "io");
        assert!((m[1].get_gauge().value() - 5.0).abs() < f64::EPSILON);
    }
}
