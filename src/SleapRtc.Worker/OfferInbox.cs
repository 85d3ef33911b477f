using SleapRtc.Signaling.Client;

namespace SleapRtc.Worker;

/// <summary>
/// Offers a worker receives from the moment it registers: held until the host is ready to serve them (<see cref="Open"/>),
/// then handed over in arrival order, and from then on passed straight through.
/// </summary>
internal sealed class OfferInbox
{
    private readonly object _gate = new();
    private List<SdpMessage>? _held = new();
    private Action<SdpMessage>? _deliver;

    public void Add(SdpMessage offer)
    {
        Action<SdpMessage> deliver;
        lock (_gate)
        {
            if (_deliver is null)
            {
                _held!.Add(offer);
                return;
            }
            deliver = _deliver;
        }
        deliver(offer);
    }

    public void Open(Action<SdpMessage> deliver)
    {
        List<SdpMessage> held;
        lock (_gate)
        {
            _deliver = deliver;
            held = _held!;
            _held = null;
        }
        foreach (var offer in held) deliver(offer);
    }
}
