// Readable text for stored txns and bytes (corral-admin's dumps).
#pragma once

#include <string>
#include <string_view>

#include "state/txn.h"

namespace corral::admin {

using kernel::Txn;

// "zxid 0x2 time 2026-11-23T04:56:02.123Z session 0x100.. create /a data="hello" ..."
std::string txnText(const Txn& txn);
// Printable bytes as they are, in quotes; anything else as hex.
std::string bytesText(std::string_view bytes);
const char* opName(OpCode op);

}  // namespace corral::admin
