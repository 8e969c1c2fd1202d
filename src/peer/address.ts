// Node addresses as dqlite writes them: "host:port", "[ipv6]:port", or "@name" for a Linux
// abstract Unix socket (go-dqlite dials those for addresses starting with '@').

export type DialTarget = { readonly host: string; readonly port: number } | { readonly path: string };

/** Where to dial `address`, or undefined when it is not a usable address. */
export function parseAddress(address: string): DialTarget | undefined {
    if (address.startsWith('@')) return address.length > 1 ? { path: `\0${address.slice(1)}` } : undefined;
    let host: string;
    let portText: string;
    if (address.startsWith('[')) {
        const close = address.indexOf(']');
        if (close < 0 || address[close + 1] !== ':') return undefined;
        host = address.slice(1, close);
        portText = address.slice(close + 2);
    } else {
        const colon = address.lastIndexOf(':');
        if (colon <= 0 || address.indexOf(':') !== colon) return undefined;
        host = address.slice(0, colon);
        portText = address.slice(colon + 1);
    }
    if (host.length === 0 || !/^[0-9]{1,5}$/.test(portText)) return undefined;
    const port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
    return { host, port };
}
