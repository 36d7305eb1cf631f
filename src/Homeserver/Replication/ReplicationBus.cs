using Matrix.Homeserver.Config;
using Matrix.Homeserver.Observability;
using StackExchange.Redis;

namespace Matrix.Homeserver.Replication;

/// <summary>
/// The Redis pub/sub link between the processes of one deployment (README "Scaling out"): one channel every process
/// publishes on and reads (leaving out its own messages). Messages from one process arrive in the order it published
/// them and are handled one at a time. Redis being away loses messages, never data:
/// workers then fall back to the database (<see cref="WorkerReplication"/>). One process (no <c>worker.redis</c>):
/// nothing is sent.
/// </summary>
public sealed class ReplicationBus(HomeserverConfig config, ServerMetrics metrics, ILogger<ReplicationBus> logger) : IAsyncDisposable
{
    private ConnectionMultiplexer? _redis;
    private ISubscriber? _subscriber;
    private RedisChannel Channel => RedisChannel.Literal($"{config.Worker.RedisChannelPrefix}.replication");

    /// <summary>Whether there are other processes to tell.</summary>
    public bool Enabled => config.Worker.Replicates;
    public bool IsMain => config.Worker.IsMain;
    public bool Connected => _redis?.IsConnected == true;

    /// <summary>Raised when the link to Redis breaks (false) and when it is back (true).</summary>
    public event Action<bool>? ConnectionChanged;

    /// <summary>Connects (retrying in the background when Redis is not there yet) and handles the other processes' messages in order.</summary>
    public async Task StartAsync(Func<ReplicationMessage, Task> handle)
    {
        var options = ConfigurationOptions.Parse(config.Worker.Redis!);
        options.AbortOnConnectFail = false;
        options.ClientName ??= config.Worker.InstanceName;
        _redis = await ConnectionMultiplexer.ConnectAsync(options);
        _redis.ConnectionFailed += (_, e) =>
        {
            if (e.ConnectionType != ConnectionType.Subscription)
                return;
            metrics.ReplicationConnected.Set(0);
            logger.LogWarning("Lost the connection to Redis ({Failure}); falling back to the database until it is back", e.FailureType);
            ConnectionChanged?.Invoke(false);
        };
        _redis.ConnectionRestored += (_, e) =>
        {
            if (e.ConnectionType != ConnectionType.Subscription)
                return;
            metrics.ReplicationConnected.Set(1);
            logger.LogInformation("Connected to Redis again");
            ConnectionChanged?.Invoke(true);
        };
        metrics.ReplicationConnected.Set(_redis.IsConnected ? 1 : 0);
        _subscriber = _redis.GetSubscriber();
        var queue = await _subscriber.SubscribeAsync(Channel);
        queue.OnMessage(async message =>
        {
            if (ReplicationMessage.Decode(message.Message.ToString()) is not { } decoded || decoded.Origin == config.Worker.InstanceName)
                return;
            metrics.ReplicationMessages.Add(1, "received");
            try
            {
                await handle(decoded);
            }
            catch (Exception e)
            {
                logger.LogError(e, "Handling a replication message ({Kind}) failed", decoded.Kind);
            }
        });
        if (!_redis.IsConnected)
            logger.LogWarning("Redis is not reachable yet; retrying in the background");
    }

    /// <summary>Tells the other processes, without waiting (in call order; dropped when Redis is away).</summary>
    public void Publish(ReplicationMessage message)
    {
        if (_subscriber is null || !Enabled)
            return;
        metrics.ReplicationMessages.Add(1, "sent");
        _subscriber.Publish(Channel, message.Encode(config.Worker.InstanceName), CommandFlags.FireAndForget);
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is not null)
            await _redis.DisposeAsync();
    }
}
