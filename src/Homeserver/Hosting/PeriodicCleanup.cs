using Matrix.Homeserver.Observability;

namespace Matrix.Homeserver.Hosting;

/// <summary>
/// A clean-up of expired records run when the process starts (what expired while it was down) and then once a minute,
/// by the process that runs the deployment's background jobs (<c>worker.background_tasks_instance</c>, else the main
/// process); each pass that completes is counted in <c>homeserver_background_job_runs_total</c>.
/// </summary>
public abstract class PeriodicCleanup(ServerMetrics metrics, TimeProvider clock, ILogger logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    protected TimeProvider Clock { get; } = clock;

    /// <summary>The job's name in logs and metrics.</summary>
    protected abstract string Job { get; }

    protected abstract Task RunPassAsync(CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, Clock);
        do
        {
            try
            {
                await RunPassAsync(stoppingToken);
                metrics.BackgroundJobRuns.Add(1, Job);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Background job {Job} failed; retrying in {Interval}", Job, Interval);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
