using SleapRtc.Signaling.Server;
using Xunit;

namespace SleapRtc.Signaling.Tests;

// The single server's conformance suites, run against instance 0 of a three-instance cluster sharing a real
// redis-server; their peers join through the three instances in turn, so every exchange they check crosses instances.

public sealed class ClusterProtocolTests(RedisTestServer redis) : ProtocolTests, IClassFixture<RedisTestServer>
{
    protected override Task<TestServer> StartServerAsync(Action<SignalingServerOptions>? configure = null) => TestServer.StartClusterAsync(redis, 3, configure);
}

public sealed class ClusterErrorAndSecurityTests(RedisTestServer redis) : ErrorAndSecurityTests, IClassFixture<RedisTestServer>
{
    protected override Task<TestServer> StartServerAsync(Action<SignalingServerOptions>? configure = null) => TestServer.StartClusterAsync(redis, 3, configure);
}

public sealed class ClusterPeerIdBindingTests(RedisTestServer redis) : PeerIdBindingTests, IClassFixture<RedisTestServer>
{
    protected override Task<TestServer> StartServerAsync(Action<SignalingServerOptions>? configure = null) => TestServer.StartClusterAsync(redis, 3, configure);
}

public sealed class ClusterTurnCredentialRenewalTests(RedisTestServer redis) : TurnCredentialRenewalTests, IClassFixture<RedisTestServer>
{
    protected override Task<TestServer> StartServerAsync(Action<SignalingServerOptions>? configure = null) => TestServer.StartClusterAsync(redis, 2, configure);
}
