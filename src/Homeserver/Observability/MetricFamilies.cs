using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace Matrix.Homeserver.Observability;

/// <summary>
/// One Prometheus metric family: a name, help text, type and label names, with one series per set of label values.
/// Label values must come from small sets (route templates, status codes, server names), never from raw request data.
/// </summary>
public abstract class MetricFamily(string name, string help, string type, string[] labelNames)
{
    public string Name => name;
    public string Help => help;
    public string Type => type;
    public IReadOnlyList<string> LabelNames => labelNames;

    internal abstract void WriteSamples(PrometheusTextWriter writer);

    protected void CheckLabels(ReadOnlySpan<string> values)
    {
        if (values.Length != labelNames.Length)
            throw new ArgumentException($"{name} takes {labelNames.Length} label values, not {values.Length}");
    }
}

/// <summary>
/// Compares label value arrays by content, so each set of values finds its series; a span of values finds it too, so
/// counting a request allocates no array (the labels are passed as <c>params ReadOnlySpan</c>).
/// </summary>
internal sealed class LabelValuesComparer : IEqualityComparer<string[]>, IAlternateEqualityComparer<ReadOnlySpan<string>, string[]>
{
    public static readonly LabelValuesComparer Instance = new();

    public bool Equals(string[]? x, string[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(string[] values) => GetHashCode(values.AsSpan());

    public bool Equals(ReadOnlySpan<string> alternate, string[] other) => alternate.SequenceEqual(other);

    public int GetHashCode(ReadOnlySpan<string> alternate)
    {
        var hash = new HashCode();
        foreach (var value in alternate)
            hash.Add(value, StringComparer.Ordinal);
        return hash.ToHashCode();
    }

    public string[] Create(ReadOnlySpan<string> alternate) => alternate.ToArray();
}

/// <summary>A family whose series each hold one number (counters and gauges).</summary>
public abstract class ScalarFamily(string name, string help, string type, string[] labelNames) : MetricFamily(name, help, type, labelNames)
{
    private readonly ConcurrentDictionary<string[], StrongBox<double>> _series = new(LabelValuesComparer.Instance);

    protected StrongBox<double> Series(ReadOnlySpan<string> labels)
    {
        if (_series.GetAlternateLookup<ReadOnlySpan<string>>().TryGetValue(labels, out var series))
            return series;
        CheckLabels(labels);
        return _series.GetOrAdd(labels.ToArray(), _ => new StrongBox<double>());
    }

    protected void ClearSeries() => _series.Clear();

    internal override void WriteSamples(PrometheusTextWriter writer)
    {
        foreach (var (labels, value) in _series)
            writer.Sample(Name, LabelNames, labels, Volatile.Read(ref value.Value));
    }
}

/// <summary>A value that only goes up (or a total the runtime keeps, copied in when scraped).</summary>
public sealed class Counter(string name, string help, params string[] labelNames) : ScalarFamily(name, help, "counter", labelNames)
{
    public void Inc(params ReadOnlySpan<string> labels) => Add(1, labels);

    public void Add(double amount, params ReadOnlySpan<string> labels) => AtomicDouble.Add(ref Series(labels).Value, amount);

    /// <summary>Sets a total kept elsewhere (CPU seconds, garbage collections), read when scraped.</summary>
    public void SetTotal(double total, params ReadOnlySpan<string> labels) => Volatile.Write(ref Series(labels).Value, total);
}

/// <summary>A value that goes up and down: open long-polls, queue depths, heap size.</summary>
public sealed class Gauge(string name, string help, params string[] labelNames) : ScalarFamily(name, help, "gauge", labelNames)
{
    public void Set(double value, params ReadOnlySpan<string> labels) => Volatile.Write(ref Series(labels).Value, value);

    public void Add(double delta, params ReadOnlySpan<string> labels) => AtomicDouble.Add(ref Series(labels).Value, delta);

    /// <summary>Forgets every series, before a scrape sets the ones that still exist (destinations with nothing queued).</summary>
    public void Clear() => ClearSeries();
}

/// <summary>Observations counted into cumulative buckets (upper bounds in ascending order), with their sum and count.</summary>
public sealed class Histogram(string name, string help, double[] buckets, params string[] labelNames)
    : MetricFamily(name, help, "histogram", labelNames)
{
    /// <summary>Seconds, from a fast cache hit to a long-poll's full minute.</summary>
    public static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

    private sealed class Series(int buckets)
    {
        public readonly long[] Counts = new long[buckets];
        public double Sum;
        public long Count;
    }

    private readonly ConcurrentDictionary<string[], Series> _series = new(LabelValuesComparer.Instance);

    public void Observe(double value, params ReadOnlySpan<string> labels)
    {
        if (!_series.GetAlternateLookup<ReadOnlySpan<string>>().TryGetValue(labels, out var series))
        {
            CheckLabels(labels);
            series = _series.GetOrAdd(labels.ToArray(), _ => new Series(buckets.Length));
        }
        var bucket = Array.BinarySearch(buckets, value);
        // Each bucket counts only its own observations; writing makes them cumulative.
        bucket = bucket >= 0 ? bucket : ~bucket;
        lock (series)
        {
            if (bucket < buckets.Length)
                series.Counts[bucket]++;
            series.Sum += value;
            series.Count++;
        }
    }

    internal override void WriteSamples(PrometheusTextWriter writer)
    {
        var bucketLabels = LabelNames.Append("le").ToArray();
        foreach (var (labels, series) in _series)
        {
            long[] counts;
            double sum;
            long count;
            lock (series)
            {
                counts = (long[])series.Counts.Clone();
                sum = series.Sum;
                count = series.Count;
            }
            long cumulative = 0;
            for (var i = 0; i < buckets.Length; i++)
            {
                cumulative += counts[i];
                writer.Sample(Name + "_bucket", bucketLabels, [.. labels, PrometheusTextWriter.FormatValue(buckets[i])], cumulative);
            }
            writer.Sample(Name + "_bucket", bucketLabels, [.. labels, "+Inf"], count);
            writer.Sample(Name + "_sum", LabelNames, labels, sum);
            writer.Sample(Name + "_count", LabelNames, labels, count);
        }
    }
}

internal static class AtomicDouble
{
    public static void Add(ref double location, double amount)
    {
        var current = Volatile.Read(ref location);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref location, current + amount, current);
            if (seen.Equals(current))
                return;
            current = seen;
        }
    }
}
