using Xunit;

namespace SleapRtc.Signaling.Tests;

/// <summary>Several server instances sharing one Redis, each a real <see cref="TestServer"/> on its own port.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private TestCluster(IReadOnlyList<TestServer> instances) => Instances = instances;

    public IReadOnlyList<TestServer> Instances { get; }

    public TestServer this[int index] => Instances[index];

    public static async Task<TestCluster> StartAsync(RedisTestServer redis, int count, Action<SleapRtc.Signaling.Server.SignalingServerOptions>? configure = null)
    {
        await redis.FlushAsync();
        var instances = new List<TestServer>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                instances.Add(await TestServer.StartAsync(options =>
                {
                    options.Redis = redis.Url;
                    // Faster than the defaults (2 s, 10 s), yet with room for a heartbeat late on a loaded 2-core CI box.
                    options.ClusterHeartbeatInterval = TimeSpan.FromMilliseconds(500);
                    options.ClusterPresenceTtl = TimeSpan.FromSeconds(5);
                    configure?.Invoke(options);
                }));
            }
            return new TestCluster(instances);
        }
        catch
        {
            foreach (var instance in instances) await instance.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var instance in Instances) await instance.DisposeAsync();
    }
}
