package gateway

import ()
