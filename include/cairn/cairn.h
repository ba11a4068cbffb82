// cairn: Orbax's checkpointing system, native in C++. Include this one header for the whole public API.
#pragma once

#include "cairn/array.h"
#include "cairn/async_checkpointer.h"
#include "cairn/checkpoint_args.h"
#include "cairn/checkpoint_handler.h"
#include "cairn/checkpointer.h"
#include "cairn/dtype.h"
#include "cairn/error.h"
#include "cairn/file_system.h"
#include "cairn/handlers.h"
#include "cairn/options.h"
#include "cairn/step_metadata.h"
#include "cairn/tree.h"
